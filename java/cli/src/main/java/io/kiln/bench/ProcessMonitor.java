package io.kiln.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/** CPU utilization of this process and its resident memory, read from the OS. */
public final class ProcessMonitor {
  private final com.sun.management.OperatingSystemMXBean os =
      (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
  private final int cores = Runtime.getRuntime().availableProcessors();
  private long cpuNanos;
  private long wallNanos;
  private long startCpu;
  private long startWall;

  /** Starts an interval; {@link #stop()} adds it to the totals. */
  public void start() {
    startCpu = os.getProcessCpuTime();
    startWall = System.nanoTime();
  }

  public void stop() {
    cpuNanos += os.getProcessCpuTime() - startCpu;
    wallNanos += System.nanoTime() - startWall;
  }

  /** Process CPU time over wall time of the recorded intervals, as a percent of all cores. */
  public double cpuPercent() {
    return wallNanos == 0 ? 0 : 100.0 * cpuNanos / ((double) wallNanos * cores);
  }

  /** Resident set size now, in MiB (0 where /proc is unavailable). */
  public static double residentMiB() {
    return procStatusKiB("VmRSS:") / 1024.0;
  }

  /** Peak resident set size, in MiB. */
  public static double peakResidentMiB() {
    return procStatusKiB("VmHWM:") / 1024.0;
  }

  private static long procStatusKiB(String key) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith(key)) {
          return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]);
        }
      }
    } catch (IOException | RuntimeException e) {
      return 0;
    }
    return 0;
  }
}
