"""Reading and checking the operators' SOP files, catalog, dates and groups (`sop/`)."""
