"""Benchmark suites: a TOML file expanded into cells (method x task x size x variant x
seed), run resumably with failures isolated, and reported as a leaderboard with paired
comparisons and plots. See docs/suites.md for the file format."""
