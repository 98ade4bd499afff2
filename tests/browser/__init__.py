"""Browser tests: the real app under uvicorn, driven by headless Chromium through Playwright."""
