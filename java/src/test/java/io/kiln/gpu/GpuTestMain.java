package io.kiln.gpu;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.io.PrintWriter;
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
 * -cp classes:test-classes:lib/*:test-lib/* io.kiln.gpu.GpuTestMain [package]}. Exit code 1 on any
 * failure.
 */
public final class GpuTestMain {
  private GpuTestMain() {}

  public static void main(String[] args) {
    String pkg = args.length > 0 ? args[0] : "io.kiln";
    LauncherDiscoveryRequest request =
        LauncherDiscoveryRequestBuilder.request()
            .selectors(selectPackage(pkg))
            .filters(TagFilter.includeTags("gpu"))
            .build();
    Launcher launcher = LauncherFactory.create();
    SummaryGeneratingListener summary = new SummaryGeneratingListener();
    TestExecutionListener progress =
        new TestExecutionListener() {
          @Override
          public void executionFinished(
              TestIdentifier id, org.junit.platform.engine.TestExecutionResult result) {
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
    s.printFailuresTo(new PrintWriter(System.out), 30);
    System.exit(s.getTotalFailureCount() == 0 && s.getTestsFoundCount() > 0 ? 0 : 1);
  }
}
