"""The networks: recurrent cells and the forecaster around them (torch only, no files)."""
