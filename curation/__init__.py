"""Video curation: probing, scene cuts, quality analysis, filtering, and the demo pool.

Pure logic, testable without Dagster. Heavy libraries (PyAV, OpenCV, RapidOCR, torch)
are imported inside the functions that use them so that importing this package is cheap.
"""
