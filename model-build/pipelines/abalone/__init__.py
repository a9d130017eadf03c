"""The abalone age regression pipeline: preprocess -> train -> evaluate -> condition -> register."""
