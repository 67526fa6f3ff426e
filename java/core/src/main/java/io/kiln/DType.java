package io.kiln;

/** Element types a {@link Tensor} can hold. */
public enum DType {
  F32(4, "float32"),
  F16(2, "float16"),
  BF16(2, "bfloat16"),
  I8(1, "int8"),
  /** FP8 E4M3 ("e4m3fn"), for stored weights: see {@link Float8}. */
  F8E4M3(1, "float8e4m3fn"),
  I32(4, "int32"),
  I64(8, "int64"),
  BOOL(1, "bool");

  private final int byteSize;
  private final String onnxName;

  DType(int byteSize, String onnxName) {
    this.byteSize = byteSize;
    this.onnxName = onnxName;
  }

  public int byteSize() {
    return byteSize;
  }

  /** The lower-case name used in JSON files and by ONNX tooling, such as {@code float32}. */
  public String onnxName() {
    return onnxName;
  }

  public boolean isFloatingPoint() {
    return this == F32 || this == F16 || this == BF16;
  }

  /** Parses {@code f32}, {@code float32}, {@code float}, {@code int64} and similar spellings. */
  public static DType parse(String name) {
    String n = name.trim().toLowerCase(java.util.Locale.ROOT);
    switch (n) {
      case "f32":
      case "float":
      case "float32":
        return F32;
      case "f16":
      case "half":
      case "float16":
        return F16;
      case "bf16":
      case "bfloat16":
        return BF16;
      case "i8":
      case "int8":
        return I8;
      case "f8e4m3":
      case "fp8":
      case "float8e4m3fn":
        return F8E4M3;
      case "i32":
      case "int32":
        return I32;
      case "i64":
      case "int64":
      case "long":
        return I64;
      case "bool":
      case "boolean":
        return BOOL;
      default:
        throw new InvalidInputException("unknown dtype '" + name + "'");
    }
  }
}
