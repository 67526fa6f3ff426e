package io.kiln.gpu;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;
import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TagFilter;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Runs the tests tagged {@code gpu} on a machine without Maven (the device machine): {@code java
 * -cp classes:test-classes:lib/*:test-lib/* io.kiln.gpu.GpuTestMain [package-or-class...]}, by
 * default {@code io.kiln}. Each argument names a test class if one of that name exists, else a
 * package (with its subpackages). Exit code 1 on any failure or when no test succeeded, so a run
 * where every test skipped (no device) is not a pass; skips are listed.
 */
public final class GpuTestMain {
  private GpuTestMain() {}

  public static void main(String[] args) {
    List<String> names = args.length > 0 ? Arrays.asList(args) : List.of("io.kiln");
    LauncherDiscoveryRequest request =
        LauncherDiscoveryRequestBuilder.request()
            .selectors(names.stream().map(GpuTestMain::selector).toList())
            .filters(TagFilter.includeTags("gpu"))
            .build();
    Launcher launcher = LauncherFactory.create();
    SummaryGeneratingListener summary = new SummaryGeneratingListener();
    TestExecutionListener progress =
        new TestExecutionListener() {
          @Override
          public void executionFinished(TestIdentifier id, TestExecutionResult result) {
            if (id.isTest()) {
              System.out.println(
                  "[gpu-test] "
                      + result.getStatus()
                      + " "
                      + id.getDisplayName()
                      + result.getThrowable().map(t -> " -- " + t).orElse(""));
            }
          }

          @Override
          public void executionSkipped(TestIdentifier id, String reason) {
            System.out.println("[gpu-test] SKIPPED " + id.getDisplayName() + " -- " + reason);
          }
        };
    launcher.execute(request, summary, progress);
    TestExecutionSummary s = summary.getSummary();
    s.printTo(new PrintWriter(System.out));
    s.printFailuresTo(new PrintWriter(System.out), 40);
    System.out.println(
        "[gpu-test] succeeded "
            + s.getTestsSucceededCount()
            + ", failed "
            + s.getTotalFailureCount()
            + ", skipped or aborted "
            + (s.getTestsSkippedCount()
                + s.getTestsAbortedCount()
                + s.getContainersAbortedCount()));
    boolean ok = s.getTotalFailureCount() == 0 && s.getTestsSucceededCount() > 0;
    System.exit(ok ? 0 : 1);
  }

  /** A test class when {@code name} is one, else a package. */
  static DiscoverySelector selector(String name) {
    try {
      Class.forName(name, false, GpuTestMain.class.getClassLoader());
      return selectClass(name);
    } catch (ClassNotFoundException e) {
      return selectPackage(name);
    }
  }
}
