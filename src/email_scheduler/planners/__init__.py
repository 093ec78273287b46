"""Planners: each turns contacts and settings into candidate emails."""
