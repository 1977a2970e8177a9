"""The kiosk role: a touchscreen that issues printed tickets."""
