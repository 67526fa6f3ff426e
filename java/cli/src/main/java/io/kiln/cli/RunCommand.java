package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.Npy;
import io.kiln.model.TensorJson;
import io.kiln.session.Session;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln run MODEL --inputs FILE.json}: one inference from files, results as JSON. */
@Command(
    name = "run",
    description = {
      "Run a model once on inputs from a JSON file or .npy files.",
      "The JSON maps each input name to {\"dtype\": ..., \"shape\": [...], \"data\": [...]}"
          + " (flat, row-major); the output uses the same format."
    })
final class RunCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "ONNX file or model directory (onnx/model.onnx or model.onnx)")
  Path model;

  @Option(
      names = "--inputs",
      required = true,
      arity = "1..*",
      paramLabel = "FILE",
      description = "FILE.json with all inputs, or NAME=FILE.npy per input")
  List<String> inputs;

  @Option(
      names = "--output",
      paramLabel = "FILE",
      description =
          "write outputs here (.json, or a"
              + " directory for one .npy per output); default: JSON on stdout")
  Path output;

  @Mixin SessionOptions options;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    // Options and the model are checked before the inputs are read.
    try (Session s = options.builder(model, null).build()) {
      Map<String, Tensor> feed = readInputs();
      try (Session.Result result = s.infer(feed)) {
        write(result);
      } finally {
        feed.values().forEach(Tensor::close);
      }
    }
    return ExitCodes.OK;
  }

  private void write(Session.Result result) throws IOException {
    if (output == null) {
      java.io.ByteArrayOutputStream json = new java.io.ByteArrayOutputStream();
      TensorJson.write(result.asMap(), json);
      PrintWriter out = spec.commandLine().getOut();
      out.println(json.toString(java.nio.charset.StandardCharsets.UTF_8));
      out.flush();
    } else if (output.toString().endsWith(".json")) {
      TensorJson.write(result.asMap(), output);
    } else {
      java.nio.file.Files.createDirectories(output);
      for (Map.Entry<String, Tensor> e : result) {
        Npy.write(e.getValue(), output.resolve(e.getKey().replace('/', '_') + ".npy"));
      }
    }
  }

  private Map<String, Tensor> readInputs() {
    if (inputs.size() == 1 && inputs.get(0).endsWith(".json") && !inputs.get(0).contains("=")) {
      return TensorJson.read(Path.of(inputs.get(0)));
    }
    Map<String, Tensor> feed = new LinkedHashMap<>();
    try {
      for (String spec : inputs) {
        int eq = spec.indexOf('=');
        if (eq <= 0 || !spec.endsWith(".npy")) {
          throw new InvalidInputException(
              "expected FILE.json or NAME=FILE.npy, got '" + spec + "'");
        }
        feed.put(spec.substring(0, eq), Npy.read(Path.of(spec.substring(eq + 1))));
      }
    } catch (RuntimeException e) {
      feed.values().forEach(Tensor::close);
      throw e;
    }
    return feed;
  }
}
