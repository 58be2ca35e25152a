"""Operations tools: the ``ltrr`` command, the local node, datasets, the simulator, benchmarks,
off-policy estimates, LTR model training and reports. The top layer: nothing imports it.
"""
