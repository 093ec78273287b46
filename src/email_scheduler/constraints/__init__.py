"""Constraints: stages that decide which planned emails may go out, and when."""
