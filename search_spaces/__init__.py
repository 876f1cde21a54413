"""What can be searched: operations, cells, supernets, derived networks, encodings, data and ground truth."""
