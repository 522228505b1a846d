"""Evaluators: the open metric framework, deterministic metrics, LLM judges and calibration."""
