package io.kiln.spark;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * Runs a partition through a {@link RowModel} a batch at a time, lazily, so that a partition of any
 * size holds one batch in memory; each output row is the input row plus the added columns.
 */
final class BatchedPartitions implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;

  /** Tests only: runs before each batch with the number of rows of the partition done so far. */
  interface BatchHook {
    void beforeBatch(long rowsDone);
  }

  static volatile BatchHook testHook;

  private final RowModel model;
  private final int batchSize;

  BatchedPartitions(RowModel model, int batchSize) {
    this.model = model;
    this.batchSize = batchSize;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    return new Iterator<>() {
      private Iterator<Row> ready = java.util.Collections.emptyIterator();
      private long done;

      @Override
      public boolean hasNext() {
        while (!ready.hasNext() && input.hasNext()) {
          ready = nextBatch().iterator();
        }
        return ready.hasNext();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return ready.next();
      }

      private List<Row> nextBatch() {
        List<Row> rows = new ArrayList<>(batchSize);
        while (rows.size() < batchSize && input.hasNext()) {
          rows.add(input.next());
        }
        BatchHook hook = testHook;
        if (hook != null) {
          hook.beforeBatch(done);
        }
        List<Object[]> added = model.apply(rows);
        List<Row> out = new ArrayList<>(rows.size());
        for (int i = 0; i < rows.size(); i++) {
          out.add(joined(rows.get(i), added.get(i)));
        }
        done += rows.size();
        return out;
      }
    };
  }

  /** The input row with the added column values after its own. */
  static Row joined(Row row, Object[] added) {
    Object[] values = new Object[row.length() + added.length];
    for (int i = 0; i < row.length(); i++) {
      values[i] = row.get(i);
    }
    System.arraycopy(added, 0, values, row.length(), added.length);
    return RowFactory.create(values);
  }
}
