"""One module per paper item; each returns Sections (report.section.Section)."""
