package io.kiln.model;

import io.kiln.ModelException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Optional;

/** The bytes of an ONNX model and where they came from. */
public final class ModelSource {
  private final String name;
  private final byte[] bytes;
  private final Path path;
  private String sha256;

  private ModelSource(String name, byte[] bytes, Path path) {
    if (bytes.length == 0) {
      throw new ModelException("model " + name + " is empty");
    }
    this.name = name;
    this.bytes = bytes;
    this.path = path;
  }

  public static ModelSource of(Path path) {
    try {
      return new ModelSource(path.toString(), Files.readAllBytes(path), path);
    } catch (NoSuchFileException e) {
      throw new ModelException("model file not found: " + path);
    } catch (IOException e) {
      throw new ModelException("cannot read model file " + path + ": " + e.getMessage(), e);
    }
  }

  public static ModelSource of(String name, byte[] bytes) {
    return new ModelSource(name, bytes.clone(), null);
  }

  /** A model packaged as a classpath resource, such as {@code /models/x.onnx}. */
  public static ModelSource ofResource(String resource) {
    String r = resource.startsWith("/") ? resource.substring(1) : resource;
    try (InputStream in = Thread.currentThread().getContextClassLoader().getResourceAsStream(r)) {
      if (in == null) {
        throw new ModelException("model resource not found on the classpath: " + resource);
      }
      return new ModelSource("classpath:" + r, in.readAllBytes(), null);
    } catch (IOException e) {
      throw new ModelException("cannot read model resource " + resource, e);
    }
  }

  public String name() {
    return name;
  }

  /** The model bytes; callers must not modify them. */
  public byte[] bytes() {
    return bytes;
  }

  /** The file it was read from, when it came from one (external data resolves beside it). */
  public Optional<Path> path() {
    return Optional.ofNullable(path);
  }

  public synchronized String sha256() {
    if (sha256 == null) {
      try {
        sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }
    return sha256;
  }
}
