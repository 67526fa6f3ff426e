package io.kiln.execution.llm.gpu;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;

import java.io.PrintWriter;
import java.util.Arrays;
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
 * Runs the tests tagged {@code gpu} of some packages on a machine without Maven: {@code java -cp
 * classes:test-classes:lib/*:test-lib/* io.kiln.execution.llm.gpu.LlmGpuTestMain [package...]}.
 * Exit code 1 on any failure or when nothing succeeded; skips are listed.
 */
public final class LlmGpuTestMain {
  private LlmGpuTestMain() {}

  public static void main(String[] args) {
    String[] packages = args.length > 0 ? args : new String[] {"io.kiln.execution.llm.gpu"};
    LauncherDiscoveryRequest request =
        LauncherDiscoveryRequestBuilder.request()
            .selectors(Arrays.stream(packages).map(p -> selectPackage(p)).toList())
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
                      + id.getLegacyReportingName()
                      + result.getThrowable().map(t -> " -- " + t).orElse(""));
            }
          }

          @Override
          public void executionSkipped(TestIdentifier id, String reason) {
            System.out.println(
                "[gpu-test] SKIPPED " + id.getLegacyReportingName() + " -- " + reason);
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
}
