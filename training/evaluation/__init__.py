"""The evaluation protocols as functions: `evaluation` (spectrum, samples, FID) and
`classification` (downstream, few labels). The CLIs are training.evaluate and training.classify."""
