package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.Npy;
import io.kiln.model.TensorJson;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Calibration samples in a directory, read one at a time: each {@code *.json} file is one feed in
 * the {@code kiln run} input format ({@code {"NAME": {"dtype", "shape", "data"}}}, data flat and
 * row-major), and each subdirectory holding {@code NAME.npy} files is one feed.
 */
public final class DirectoryCalibrationData implements CalibrationData {
  private final Path dir;
  private final List<Path> samples;

  public DirectoryCalibrationData(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new InvalidInputException("calibration directory not found: " + dir);
    }
    this.dir = dir;
    List<Path> found = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      s.sorted()
          .forEach(
              p -> {
                if (p.toString().endsWith(".json") && Files.isRegularFile(p)) {
                  found.add(p);
                } else if (Files.isDirectory(p) && hasNpy(p)) {
                  found.add(p);
                }
              });
    } catch (IOException e) {
      throw new InvalidInputException("cannot list calibration directory " + dir + ": " + e);
    }
    if (found.isEmpty()) {
      throw new InvalidInputException(
          "calibration set is empty: no *.json files or .npy sample folders in " + dir);
    }
    this.samples = found;
  }

  private static boolean hasNpy(Path d) {
    try (Stream<Path> s = Files.list(d)) {
      return s.anyMatch(p -> p.toString().endsWith(".npy"));
    } catch (IOException e) {
      return false;
    }
  }

  @Override
  public String description() {
    return dir + " (" + samples.size() + " samples)";
  }

  public int size() {
    return samples.size();
  }

  @Override
  public Iterator<Map<String, Tensor>> batches() {
    Iterator<Path> it = samples.iterator();
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return it.hasNext();
      }

      @Override
      public Map<String, Tensor> next() {
        Path p = it.next();
        return Files.isDirectory(p) ? readNpyDir(p) : TensorJson.read(p);
      }
    };
  }

  private static Map<String, Tensor> readNpyDir(Path d) {
    Map<String, Tensor> feed = new LinkedHashMap<>();
    try (Stream<Path> s = Files.list(d)) {
      for (Path p : s.sorted().toList()) {
        String f = p.getFileName().toString();
        if (f.endsWith(".npy")) {
          feed.put(f.substring(0, f.length() - 4), Npy.read(p));
        }
      }
    } catch (IOException e) {
      throw new InvalidInputException("cannot read calibration sample " + d + ": " + e);
    }
    return feed;
  }
}
