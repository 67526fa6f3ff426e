package io.kiln.execution.llm.gpu;

/**
 * A matrix on the device as int8 codes, row-major, with one fp32 scale per row: the values are
 * codes times their row's scale ({@code WeightQuantizer.int8Codes}).
 */
record Int8Matrix(DeviceBuffer codes, DeviceBuffer scales) {}
