package io.kiln.engine.trt;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.kiln.ModelException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The JSON sidecar written beside every plan ({@code ENGINE.plan.json}). The fields up to {@code
 * workspaceMiB} decide whether a plan may be reused ({@link #cacheKey()}); the rest describe the
 * plan file itself, so that a truncated or altered plan is caught before TensorRT sees it.
 */
public record EngineMetadata(
    String modelSha256,
    String tensorrtVersion,
    String cudaVersion,
    String gpuName,
    String computeCapability,
    String precision,
    boolean stronglyTyped,
    List<String> profiles,
    List<String> flags,
    int optLevel,
    long workspaceMiB,
    String planSha256,
    long planBytes,
    double buildSeconds,
    String builtAt,
    String modelName) {

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public EngineMetadata {
    profiles = List.copyOf(profiles);
    flags = List.copyOf(flags);
  }

  /**
   * What a plan for {@code modelSha256} built with {@code options} on {@code target} must record.
   */
  public static EngineMetadata expected(
      String modelSha256, String modelName, BuildOptions options, EngineTarget target) {
    return new EngineMetadata(
        modelSha256,
        target.tensorrtVersion(),
        target.cudaVersion(),
        target.gpuName(),
        target.computeCapability(),
        options.precision().label(),
        options.stronglyTyped(),
        options.profiles().stream().map(ShapeProfile::toString).toList(),
        options.flagNames(),
        options.optLevel(),
        options.workspaceMiB(),
        null,
        0,
        0,
        null,
        modelName);
  }

  /** The same build description, now with the plan's digest, size and build time. */
  public EngineMetadata withPlan(byte[] plan, double seconds) {
    return new EngineMetadata(
        modelSha256,
        tensorrtVersion,
        cudaVersion,
        gpuName,
        computeCapability,
        precision,
        stronglyTyped,
        profiles,
        flags,
        optLevel,
        workspaceMiB,
        sha256(plan),
        plan.length,
        seconds,
        java.time.Instant.now().toString(),
        modelName);
  }

  /** The fields that decide reuse, as one stable string. */
  public String keyText() {
    return String.join(
        "|",
        modelSha256,
        tensorrtVersion,
        cudaVersion,
        gpuName,
        computeCapability,
        precision,
        Boolean.toString(stronglyTyped),
        String.join(";", profiles),
        String.join(";", flags),
        Integer.toString(optLevel),
        Long.toString(workspaceMiB));
  }

  /** A short digest of {@link #keyText()}, used as the engine cache file name. */
  public String cacheKey() {
    return sha256(keyText().getBytes(StandardCharsets.UTF_8)).substring(0, 24);
  }

  /** The first field that differs from {@code other} in what decides reuse, or null. */
  public String firstKeyDifference(EngineMetadata other) {
    String[][] pairs = {
      {"model sha256", modelSha256, other.modelSha256},
      {"TensorRT version", tensorrtVersion, other.tensorrtVersion},
      {"CUDA version", cudaVersion, other.cudaVersion},
      {"GPU", gpuName, other.gpuName},
      {"compute capability", computeCapability, other.computeCapability},
      {"precision", precision, other.precision},
      {"strongly typed", "" + stronglyTyped, "" + other.stronglyTyped},
      {"profiles", "" + profiles, "" + other.profiles},
      {"flags", "" + flags, "" + other.flags},
      {"optimization level", "" + optLevel, "" + other.optLevel},
      {"workspace", "" + workspaceMiB, "" + other.workspaceMiB},
    };
    for (String[] p : pairs) {
      if (!java.util.Objects.equals(p[1], p[2])) {
        return p[0] + " is " + p[1] + ", expected " + p[2];
      }
    }
    return null;
  }

  /** The first field that differs in where the plan can run, or null when it runs on {@code t}. */
  public String targetMismatch(EngineTarget t) {
    if (!t.tensorrtVersion().equals(tensorrtVersion)) {
      return "built with TensorRT " + tensorrtVersion + ", running " + t.tensorrtVersion();
    }
    if (!t.gpuName().equals(gpuName) || !t.computeCapability().equals(computeCapability)) {
      return "built for "
          + gpuName
          + " (sm "
          + computeCapability
          + "), running on "
          + t.gpuName()
          + " (sm "
          + t.computeCapability()
          + ")";
    }
    if (!t.cudaVersion().equals(cudaVersion)) {
      return "built with CUDA " + cudaVersion + ", running " + t.cudaVersion();
    }
    return null;
  }

  public static Path sidecarOf(Path plan) {
    return plan.resolveSibling(plan.getFileName() + ".json");
  }

  public void write(Path sidecar) {
    try {
      Path tmp = sidecar.resolveSibling(sidecar.getFileName() + ".tmp");
      JSON.writeValue(tmp.toFile(), this);
      Files.move(
          tmp,
          sidecar,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new ModelException("cannot write engine sidecar " + sidecar + ": " + e.getMessage(), e);
    }
  }

  /** Reads a sidecar; a missing or unreadable one is a {@link ModelException}. */
  public static EngineMetadata read(Path sidecar) {
    try {
      return JSON.readValue(sidecar.toFile(), EngineMetadata.class);
    } catch (IOException e) {
      throw new ModelException("cannot read engine sidecar " + sidecar + ": " + e.getMessage(), e);
    }
  }

  public String toJson() {
    try {
      return JSON.writeValueAsString(this);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
