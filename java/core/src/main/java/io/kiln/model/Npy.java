package io.kiln.model;

import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** NumPy {@code .npy} files (format versions 1-3, little-endian, C order). */
public final class Npy {
  private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
  private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']+)'");
  private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
  private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

  private Npy() {}

  public static Tensor read(Path file) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new InvalidInputException("npy file not found: " + file);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read " + file + ": " + e.getMessage());
    }
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    for (byte m : MAGIC) {
      if (!b.hasRemaining() || b.get() != m) {
        throw new InvalidInputException(file + " is not a .npy file (bad magic)");
      }
    }
    if (b.remaining() < 4) {
      throw new InvalidInputException(file + " is truncated");
    }
    int major = b.get();
    b.get();
    long headerLength = major == 1 ? Short.toUnsignedInt(b.getShort()) : b.getInt();
    if (headerLength < 0 || headerLength > b.remaining()) {
      throw new InvalidInputException(file + " has a corrupt header length");
    }
    byte[] headerBytes = new byte[(int) headerLength];
    b.get(headerBytes);
    String header = new String(headerBytes, StandardCharsets.ISO_8859_1);
    DType dtype = parseDescr(file, find(DESCR, header, file));
    if (find(FORTRAN, header, file).equals("True")) {
      throw new InvalidInputException(file + " is in Fortran order; save it in C order");
    }
    List<Long> dims = new ArrayList<>();
    for (String part : find(SHAPE, header, file).split(",")) {
      if (!part.isBlank()) {
        dims.add(Long.parseLong(part.trim()));
      }
    }
    long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
    long count = 1;
    for (long d : shape) {
      count = Math.multiplyExact(count, d);
    }
    long need = count * dtype.byteSize();
    if (b.remaining() < need) {
      throw new InvalidInputException(
          file + " holds " + b.remaining() + " data bytes but its header needs " + need);
    }
    Tensor t = Tensor.allocate(dtype, shape);
    ByteBuffer dst = t.buffer();
    if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
      t.close();
      throw new InvalidInputException(".npy reading needs a little-endian machine");
    }
    dst.put(bytes, b.position(), (int) need);
    return t;
  }

  public static void write(Tensor t, Path file) {
    StringBuilder shape = new StringBuilder("(");
    long[] s = t.shape();
    for (int i = 0; i < s.length; i++) {
      shape.append(s[i]).append(s.length == 1 ? "," : (i + 1 < s.length ? ", " : ""));
    }
    shape.append(')');
    String dict =
        "{'descr': '" + descr(t.dtype()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
    int total = MAGIC.length + 4 + dict.length() + 1;
    int pad = (64 - total % 64) % 64;
    String header = dict + " ".repeat(pad) + "\n";
    ByteBuffer head = ByteBuffer.allocate(MAGIC.length + 4 + header.length());
    head.order(ByteOrder.LITTLE_ENDIAN).put(MAGIC).put((byte) 1).put((byte) 0);
    head.putShort((short) header.length()).put(header.getBytes(StandardCharsets.ISO_8859_1));
    try {
      byte[] data = t.toByteArray();
      byte[] all = new byte[head.capacity() + data.length];
      System.arraycopy(head.array(), 0, all, 0, head.capacity());
      System.arraycopy(data, 0, all, head.capacity(), data.length);
      Files.write(file, all);
    } catch (IOException e) {
      throw new KilnException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  private static String find(Pattern p, String header, Path file) {
    Matcher m = p.matcher(header);
    if (!m.find()) {
      throw new InvalidInputException(file + " has a malformed header: " + header.trim());
    }
    return m.group(1);
  }

  private static DType parseDescr(Path file, String descr) {
    return switch (descr) {
      case "<f4" -> DType.F32;
      case "<f2" -> DType.F16;
      case "|i1", "<i1" -> DType.I8;
      case "<i4" -> DType.I32;
      case "<i8" -> DType.I64;
      case "|b1", "<b1" -> DType.BOOL;
      default ->
          throw new InvalidInputException(
              file + " has dtype " + descr + "; Kiln reads <f4, <f2, i1, <i4, <i8 and b1");
    };
  }

  private static String descr(DType dtype) {
    return switch (dtype) {
      case F32 -> "<f4";
      case F16 -> "<f2";
      case I8 -> "|i1";
      case I32 -> "<i4";
      case I64 -> "<i8";
      case BOOL -> "|b1";
      case BF16 -> throw new InvalidInputException(".npy has no bfloat16 type");
      case F8E4M3 -> throw new InvalidInputException(".npy has no float8 type");
    };
  }
}
