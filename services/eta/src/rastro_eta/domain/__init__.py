"""The ETA model, pure: lanes, transit times, quantiles and predictions. No I/O, no frameworks."""
