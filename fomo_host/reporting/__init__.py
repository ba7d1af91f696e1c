"""Reading finished (or running) run directories and drawing what people compare: plots, tables, one HTML page."""
