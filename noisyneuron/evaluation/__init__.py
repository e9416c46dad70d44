"""Evaluation reports: separation and classification quality, side by side with peers."""
