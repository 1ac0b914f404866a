"""Presentation order, sampling by time and constant-rate resampling, on decoder stand-ins."""

from fractions import Fraction

import pytest

from curation.frame_timing import PresentationOrder, TimeGrid, clip_ticks, hold_ticks


def _drain(order, arrivals):
    out = []
    for pts, payload in arrivals:
        out += order.push(pts, payload)
    return out + order.flush()


def test_out_of_order_timestamps_come_out_in_presentation_order_and_none_is_lost():
    # what a packed-B-frame AVI hands over: 1, 2, 3, 5, 4, 6, 8, 7, ...
    display = list(range(40))
    arrival = display[:]
    for i in range(3, 38, 3):
        arrival[i], arrival[i + 1] = arrival[i + 1], arrival[i]
    order = PresentationOrder(Fraction(1, 25), Fraction(25))
    out = _drain(order, [(pts, f"frame{pts}") for pts in arrival])
    assert [f.payload for f in out] == [f"frame{k}" for k in display]
    assert [f.index for f in out] == display
    assert [f.time_s for f in out] == pytest.approx([k / 25 for k in display])
    assert [f.duration_s for f in out] == pytest.approx([0.04] * 40)
    assert order.late == 0


def test_times_come_from_timestamps_not_from_the_average_rate():
    # 25 fps then 12.5 fps in a millisecond time base; the container says 25 fps
    pts = [k * 40 for k in range(10)] + [400 + k * 80 for k in range(10)]
    out = _drain(PresentationOrder(Fraction(1, 1000), Fraction(25)), [(p, None) for p in pts])
    assert out[-1].time_s == pytest.approx(1.12)  # not 19 / 25 = 0.76
    assert out[-1].time_s + out[-1].duration_s == pytest.approx(1.2)
    assert out[5].duration_s == pytest.approx(0.04) and out[15].duration_s == pytest.approx(0.08)


def test_times_start_at_the_first_frame_shown():
    out = _drain(PresentationOrder(Fraction(1, 90000), Fraction(30)), [(p, p) for p in (9000, 12000, 15000)])
    assert [f.time_s for f in out] == pytest.approx([0.0, 1 / 30, 2 / 30])


def test_frames_without_timestamps_follow_at_the_nominal_rate():
    out = _drain(PresentationOrder(Fraction(1, 1000), Fraction(10)), [(0, "a"), (None, "b"), (None, "c")])
    assert [(f.payload, round(f.time_s, 3)) for f in out] == [("a", 0.0), ("b", 0.1), ("c", 0.2)]


def test_a_frame_later_than_the_buffer_is_kept_and_counted():
    order = PresentationOrder(Fraction(1, 10), Fraction(10), depth=2)
    arrivals = [(p, p) for p in (0, 1, 2, 3, 4, 5)] + [(1, "late")] + [(p, p) for p in (6, 7)]
    out = _drain(order, arrivals)
    assert len(out) == 9 and "late" in [f.payload for f in out]
    assert order.late == 1 and order.depth == 4
    times = [f.time_s for f in out]
    assert times == sorted(times)  # still non-decreasing: the late frame is shown where it arrived


def test_a_single_frame_lasts_one_nominal_interval():
    [only] = _drain(PresentationOrder(Fraction(1, 1000), Fraction(20)), [(500, "x")])
    assert (only.index, only.time_s, only.duration_s) == (0, 0.0, pytest.approx(0.05))


def test_time_grid_samples_by_time_and_absorbs_rounding():
    keep30 = TimeGrid(6.0, tolerance_s=0.05 / 30)
    ms = [round(k * 1000 / 30) / 1000 for k in range(31)]  # 30 fps in a millisecond time base
    assert [k for k, t in enumerate(ms) if keep30.keep(t)] == [0, 5, 10, 15, 20, 25, 30]
    vfr = TimeGrid(5.0, tolerance_s=1e-6)
    times = [k * 0.04 for k in range(25)] + [1.0 + k * 0.5 for k in range(4)]
    kept = [t for t in times if vfr.keep(t)]
    assert kept[:5] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8]) and kept[5:] == pytest.approx([1.0, 1.5, 2.0, 2.5])
    assert all(TimeGrid(None).keep(t) for t in times)


@pytest.mark.parametrize(("times", "rate", "span", "expected"), [
    ([0.0, 0.05, 0.1, 0.15], 20.0, 0.2, [1, 1, 1, 1]),  # the source's own rate: frame for frame
    ([0.0, 0.1, 0.2], 20.0, 0.3, [2, 2, 2]),  # half the rate: each frame twice
    ([0.0, 0.04, 0.08, 0.12, 0.16, 0.2], 12.5, 0.24, [1, 0, 1, 0, 1, 0]),  # double: every other
])
def test_hold_ticks_resamples_onto_a_constant_rate(times, rate, span, expected):
    ticks, got = 0, []
    for k, t in enumerate(times):
        nxt = times[k + 1] if k + 1 < len(times) else None
        n = hold_ticks(0.0, rate, ticks, nxt) if nxt is not None else clip_ticks(span, rate) - ticks
        got.append(n)
        ticks += n
    assert got == expected
    assert ticks == clip_ticks(span, rate) == round(span * rate)
