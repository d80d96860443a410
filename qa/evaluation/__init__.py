"""Measuring the answers: ``qa eval`` over question files (evaluate), the abstention thresholds
fitted by cross-validation across them (calibrate, ``qa calibrate``), and what each ranking signal
adds (ablation, ``qa eval --ablation``)."""
