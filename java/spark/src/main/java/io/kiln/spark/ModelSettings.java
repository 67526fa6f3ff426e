package io.kiln.spark;

import io.kiln.Precision;
import io.kiln.session.Session;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/** The settings every Kiln transformer ships to its executors with the model's own. */
record ModelSettings(String device, int batchSize, int threads, boolean failFast)
    implements Serializable {

  /**
   * This executor's {@code kind} of model at {@code path} for the running task's device, opened by
   * {@code open} on first use. {@code options} are the model's own settings; with the device and
   * these settings they tell one instance from another.
   */
  <T extends AutoCloseable> T openForTask(
      String kind, String path, List<String> options, Function<DeviceAssignment, T> open) {
    DeviceAssignment on = DeviceAssignment.forTask(device);
    List<String> all = new ArrayList<>(options);
    all.add(Integer.toString(batchSize));
    all.add(Integer.toString(threads));
    return ExecutorModels.get(
        new ExecutorModels.ModelKey(kind, path, on.label(), all), () -> open.apply(on));
  }

  /** A session on the task's device with these settings. */
  Session.Builder tune(Session.Builder b, DeviceAssignment on, String precision) {
    b.device(on.device())
        .precision(Precision.valueOf(precision.toUpperCase(java.util.Locale.ROOT)));
    b.maxBatchSize(batchSize);
    if (threads > 0) {
      b.intraOpThreads(threads);
    }
    return b;
  }
}
