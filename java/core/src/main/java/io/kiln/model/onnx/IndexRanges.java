package io.kiln.model.onnx;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * What a model's integer inputs may hold, learned from the model itself: an input that indexes the
 * rows of an embedding table (a Gather on an initializer) must stay within that table, and a
 * sequence may not be longer than a position table. ONNX Runtime would otherwise wrap a negative id
 * to another row, or fail deep inside a run with a multi-line log.
 *
 * @param rows input name to the number of rows its values index (values must be in [0, rows))
 * @param maxSequence the longest sequence (axis 1 of the indexing inputs) the position table
 *     allows, or 0 when the model has none
 */
public record IndexRanges(Map<String, Long> rows, long maxSequence) {
  /** Ops that pass index values through unchanged, so an input still indexes behind them. */
  private static final Set<String> VALUE_PRESERVING =
      Set.of("Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity");

  public static IndexRanges none() {
    return new IndexRanges(Map.of(), 0);
  }

  public static IndexRanges of(OnnxModel model) {
    Map<String, Proto> initializers = model.initializers();
    List<String> inputs = model.inputNames();
    Map<String, String> sourceInput = new HashMap<>(); // tensor -> graph input it carries
    for (String input : inputs) {
      sourceInput.put(input, input);
    }
    Map<String, Long> rows = new LinkedHashMap<>();
    long maxSequence = 0;
    for (Node node : model.nodes()) {
      if (VALUE_PRESERVING.contains(node.opType()) && !node.inputs().isEmpty()) {
        String carried = sourceInput.get(node.input(0));
        if (carried != null) {
          node.outputs().forEach(o -> sourceInput.put(o, carried));
        }
        continue;
      }
      if (!node.opType().equals("Gather")
          || node.inputs().size() < 2
          || node.intAttribute("axis", 0) != 0) {
        continue;
      }
      Proto table = initializers.get(node.input(0));
      if (table == null) {
        continue;
      }
      long[] dims = TensorProtos.dims(table);
      if (dims.length < 2 || dims[0] <= 0) {
        continue;
      }
      String input = sourceInput.get(node.input(1));
      if (input != null) {
        rows.merge(input, dims[0], Math::min);
      } else if (isPositionTable(node)) {
        maxSequence = maxSequence == 0 ? dims[0] : Math.min(maxSequence, dims[0]);
      }
    }
    return new IndexRanges(Map.copyOf(rows), maxSequence);
  }

  /** Exporters name the learned position table so (BERT's position_embeddings, for one). */
  private static boolean isPositionTable(Node gather) {
    return (gather.input(0) + " " + gather.name()).toLowerCase(Locale.ROOT).contains("position");
  }
}
