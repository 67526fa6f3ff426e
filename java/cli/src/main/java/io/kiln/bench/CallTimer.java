package io.kiln.bench;

import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.SequenceChunk;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Times runner calls alone, as the engine makes them: through the greedy path where the runner has
 * one, else for logits. The calls take turns, so that a change in the machine's state touches them
 * alike, and each recomputes the same positions every time (their K/V are simply written again).
 */
public final class CallTimer {
  private CallTimer() {}

  /** One kind of runner call: the step it computes on its runner. */
  public record Call(ModelRunner runner, List<SequenceChunk> step) {}

  /**
   * Milliseconds per call and sample, {@code [call][sample]}, after {@code warmUp} untimed rounds.
   *
   * @param afterLast called with a call's index right after its last timed sample ran
   */
  public static double[][] measure(
      List<Call> calls, int warmUp, int samples, IntConsumer afterLast) {
    double[][] millis = new double[calls.size()][samples];
    for (int sample = -warmUp; sample < samples; sample++) {
      for (int c = 0; c < calls.size(); c++) {
        Call call = calls.get(c);
        long start = System.nanoTime();
        if (call.runner().forwardGreedy(call.step()) == null) {
          call.runner().forward(call.step());
        }
        if (sample >= 0) {
          millis[c][sample] = (System.nanoTime() - start) / 1e6;
        }
        if (sample == samples - 1) {
          afterLast.accept(c);
        }
      }
    }
    return millis;
  }
}
