"""Shared library of the H&M real-time recommender: every stage imports from here."""
