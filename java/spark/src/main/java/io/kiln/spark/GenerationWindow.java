package io.kiln.spark;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.GenerationResult;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.util.TaskCompletionListener;

/**
 * A task's rows through the executor's shared engine with up to {@code batchSize} of them in
 * flight: as the oldest finishes it is emitted and the next row is submitted, so continuous
 * batching never waits for a whole window to drain. Rows come out in input order, each with its
 * generated text, ids and error.
 */
final class GenerationWindow implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  private static final int WIDTH = 3;

  private final GeneratorSpec spec;
  private final int column;

  GenerationWindow(GeneratorSpec spec, int column) {
    this.spec = spec;
    this.column = column;
  }

  /** One row on its way: its request, or the values of a row refused before it ran. */
  private record InFlight(Row row, GenerationHandle handle, Object[] refused) {
    void cancel() {
      if (handle != null) {
        handle.cancel();
      }
    }
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    LlmWorker worker = spec.worker();
    boolean failFast = spec.settings().failFast();
    int width = spec.settings().batchSize();
    Deque<InFlight> window = new ArrayDeque<>();
    TaskContext task = TaskContext.get();
    if (task != null) {
      // A failed or killed task leaves nothing running in the shared engine.
      TaskCompletionListener cancelRest = done -> window.forEach(InFlight::cancel);
      task.addTaskCompletionListener(cancelRest);
    }
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        fill();
        return !window.isEmpty();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        InFlight head = window.poll();
        Object[] values;
        if (head.refused() != null) {
          values = head.refused();
        } else {
          try {
            values = values(head.handle().result().join(), worker.tokenizer());
          } catch (RuntimeException e) {
            values = refuse(e);
          }
        }
        fill();
        return BatchedPartitions.joined(head.row(), values);
      }

      private void fill() {
        while (window.size() < width && input.hasNext()) {
          Row row = input.next();
          try {
            GenerationHandle handle =
                worker.engine().submit(prompt(row, worker), spec.sampling(), e -> {});
            window.add(new InFlight(row, handle, null));
          } catch (KilnException e) {
            window.add(new InFlight(row, null, refuse(e)));
          }
        }
      }

      private Object[] refuse(RuntimeException e) {
        try {
          return RowErrors.failedOrThrow(WIDTH, e, failFast);
        } catch (RuntimeException failing) {
          window.forEach(InFlight::cancel);
          throw failing;
        }
      }
    };
  }

  private int[] prompt(Row row, LlmWorker worker) {
    if (row.isNullAt(column)) {
      throw new InvalidInputException("null prompt");
    }
    Object cell = row.get(column);
    if (cell instanceof String text) {
      if (text.isEmpty()) {
        throw new InvalidInputException("empty prompt");
      }
      HuggingFaceTokenizer tokenizer = worker.tokenizer();
      if (tokenizer == null) {
        throw new InvalidInputException(
            "a text prompt needs the model's tokenizer.json; give token ids instead");
      }
      long[] ids = tokenizer.encode(text).getIds();
      int[] out = new int[ids.length];
      for (int i = 0; i < ids.length; i++) {
        out[i] = Math.toIntExact(ids[i]);
      }
      return out;
    }
    List<Object> ids = row.getList(column);
    int[] out = new int[ids.size()];
    for (int i = 0; i < out.length; i++) {
      Object id = ids.get(i);
      if (id == null) {
        throw new InvalidInputException("prompt id " + i + " is null");
      }
      long v = ((Number) id).longValue();
      out[i] = v < Integer.MIN_VALUE || v > Integer.MAX_VALUE ? -1 : (int) v;
    }
    return out;
  }

  private static Object[] values(GenerationResult r, HuggingFaceTokenizer tokenizer) {
    int[] ids = r.newTokenIds();
    String text = null;
    if (tokenizer != null) {
      long[] longs = new long[ids.length];
      for (int i = 0; i < ids.length; i++) {
        longs[i] = ids[i];
      }
      text = tokenizer.decode(longs);
    }
    return new Object[] {text, ids, null};
  }
}
