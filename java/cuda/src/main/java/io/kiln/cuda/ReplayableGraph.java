package io.kiln.cuda;

/** A captured, instantiated graph that can be launched again and again. */
public interface ReplayableGraph extends AutoCloseable {
  void launch();

  /** Device memory the graph took when it was instantiated, in bytes (an estimate). */
  long memoryBytes();

  @Override
  void close();
}
