package io.kiln.engine.trt;

import io.kiln.ModelException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A directory of plans, each named by the digest of what it was built from and for ({@link
 * EngineMetadata#cacheKey()}). A plan is reused only when its sidecar matches the expected build
 * and its bytes match the sidecar's sha256; otherwise the reason is logged and the plan rebuilt.
 */
public final class EngineCache {
  private static final Logger LOG = LoggerFactory.getLogger(EngineCache.class);
  private final Path dir;

  public EngineCache(Path dir) {
    this.dir = dir;
  }

  /** The default location: {@code $KILN_CACHE} or {@code ~/.cache/kiln/engines}. */
  public static EngineCache defaultCache() {
    String env = System.getenv("KILN_CACHE");
    Path base =
        env != null && !env.isBlank()
            ? Path.of(env)
            : Path.of(System.getProperty("user.home"), ".cache", "kiln");
    return new EngineCache(base.resolve("engines"));
  }

  public Path dir() {
    return dir;
  }

  public Path planPath(EngineMetadata expected) {
    return dir.resolve(expected.cacheKey() + ".plan");
  }

  /** Where a plan came from. */
  public enum Outcome {
    HIT,
    BUILT,
    REBUILT_STALE,
    REBUILT_CORRUPT
  }

  /** A verified plan and how it was obtained. */
  public record Entry(byte[] plan, EngineMetadata metadata, Path file, Outcome outcome) {}

  /**
   * Returns the cached plan for {@code expected}, or builds, stores and returns a new one.
   *
   * @param build produces the plan bytes for {@code expected}; its metadata gets the plan digest
   */
  public Entry getOrBuild(EngineMetadata expected, Supplier<BuiltPlan> build) {
    Path file = planPath(expected);
    Outcome outcome = Outcome.BUILT;
    if (Files.exists(file) || Files.exists(EngineMetadata.sidecarOf(file))) {
      try {
        PlanFiles.Verified v = PlanFiles.readVerified(file, null);
        String diff = v.metadata().firstKeyDifference(expected);
        if (diff == null) {
          LOG.info("engine cache hit: {}", file);
          return new Entry(v.plan(), v.metadata(), file, Outcome.HIT);
        }
        LOG.warn("cached engine {} is stale ({}); rebuilding", file, diff);
        outcome = Outcome.REBUILT_STALE;
      } catch (ModelException e) {
        LOG.warn("cached engine {} is unusable ({}); rebuilding", file, e.getMessage());
        outcome = Outcome.REBUILT_CORRUPT;
      }
    }
    BuiltPlan built = build.get();
    EngineMetadata meta = expected.withPlan(built.plan(), built.seconds());
    PlanFiles.write(file, built.plan(), meta);
    return new Entry(built.plan(), meta, file, outcome);
  }

  /** Plan bytes and how long the build took. */
  public record BuiltPlan(byte[] plan, double seconds) {}
}
