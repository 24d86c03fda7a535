"""The HTML report (``codecbench report``)."""
