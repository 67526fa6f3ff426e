package io.kiln.spark;

import java.util.Map;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * Closes the executor's Kiln models when Spark stops the executor ({@code
 * spark.plugins=io.kiln.spark.KilnSparkPlugin}); without it a JVM shutdown hook does.
 */
public final class KilnSparkPlugin implements SparkPlugin {
  @Override
  public DriverPlugin driverPlugin() {
    return null;
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new ExecutorPlugin() {
      @Override
      public void init(org.apache.spark.api.plugin.PluginContext ctx, Map<String, String> conf) {}

      @Override
      public void shutdown() {
        ExecutorModels.closeAll();
      }
    };
  }
}
