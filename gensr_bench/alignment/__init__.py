"""Preference alignment of generative restoration models (GenSR-Pref, DESIGN section 1).

``pairs`` turns scored candidates into unanimous multi-metric preference pairs; ``losses``
holds the paradigm-specific DPO objectives (sequence DPO for AR and MGM, Diffusion-DPO for FM).
Both are pure: they work on records and tensors in memory and read or write nothing.
"""
