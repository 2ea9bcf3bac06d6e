"""Video in and out, and the tensors made from frames and skeletons: decoding (PyAV, seek, only the
frames asked for), encoding, and the resizing, cropping and normalisation every model input shares."""
