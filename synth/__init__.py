"""Synthetic data generation (vLLM textbooks and instructions from corpus seeds): not built yet.

The generated text will go back through the same filters and dedup as any other source. vLLM is a
GPU-only dependency, kept in the `gpu` extra.
"""
