package io.kiln.spark;

import java.io.Serializable;
import java.util.List;
import org.apache.spark.sql.Row;

/** A model's work on one batch of rows, shipped to the executors. */
interface RowModel extends Serializable {
  /**
   * The values of the added columns for each row, in order, the error message last (null when the
   * row is fine). Throws instead when a row is bad and fail fast is on.
   */
  List<Object[]> apply(List<Row> rows);
}
