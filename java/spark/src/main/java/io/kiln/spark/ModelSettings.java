package io.kiln.spark;

import io.kiln.Precision;
import io.kiln.session.Session;
import java.io.Serializable;

/** The settings every Kiln transformer ships to its executors with the model's own. */
record ModelSettings(String device, int batchSize, int threads, boolean failFast)
    implements Serializable {

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
