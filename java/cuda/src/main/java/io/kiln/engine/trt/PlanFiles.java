package io.kiln.engine.trt;

import io.kiln.ModelException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Reads and writes a plan with its sidecar; never hands out a plan that fails its checks. */
public final class PlanFiles {
  private PlanFiles() {}

  /** Writes {@code plan} and its sidecar atomically (temporary files, then renames). */
  public static void write(Path planFile, byte[] plan, EngineMetadata metadata) {
    try {
      Path parent = planFile.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Path tmp = planFile.resolveSibling(planFile.getFileName() + ".tmp");
      Files.write(tmp, plan);
      Files.move(
          tmp, planFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new ModelException("cannot write plan " + planFile + ": " + e.getMessage(), e);
    }
    metadata.write(EngineMetadata.sidecarOf(planFile));
  }

  /** A plan with its metadata, read and verified. */
  public record Verified(byte[] plan, EngineMetadata metadata) {}

  /**
   * Reads a plan and its sidecar and checks the plan's size and sha256 against the sidecar, and the
   * sidecar against {@code target} when given.
   *
   * @throws ModelException naming the problem: missing sidecar, corrupt plan, other GPU or version
   */
  public static Verified readVerified(Path planFile, EngineTarget target) {
    Path sidecar = EngineMetadata.sidecarOf(planFile);
    if (!Files.exists(sidecar)) {
      throw new ModelException(
          "plan "
              + planFile
              + " has no sidecar "
              + sidecar.getFileName()
              + "; refusing to load it");
    }
    EngineMetadata meta = EngineMetadata.read(sidecar);
    byte[] plan;
    try {
      plan = Files.readAllBytes(planFile);
    } catch (NoSuchFileException e) {
      throw new ModelException("plan file not found: " + planFile);
    } catch (IOException e) {
      throw new ModelException("cannot read plan " + planFile + ": " + e.getMessage(), e);
    }
    if (meta.planSha256() == null || plan.length != meta.planBytes()) {
      throw new ModelException(
          "plan "
              + planFile
              + " is corrupt: "
              + plan.length
              + " bytes, sidecar says "
              + meta.planBytes());
    }
    if (!EngineMetadata.sha256(plan).equals(meta.planSha256())) {
      throw new ModelException(
          "plan " + planFile + " is corrupt: its sha256 does not match the sidecar");
    }
    if (target != null) {
      String mismatch = meta.targetMismatch(target);
      if (mismatch != null) {
        throw new ModelException("plan " + planFile + " does not fit this machine: " + mismatch);
      }
    }
    return new Verified(plan, meta);
  }
}
