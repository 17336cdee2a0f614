"""Tests of the video analytics project (see README, "How it works")."""
