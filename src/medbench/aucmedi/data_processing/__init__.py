"""AUCMEDI's data processing: `io_data.input_interface` and `data_generator.DataGenerator`."""
