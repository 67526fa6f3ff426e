package io.kiln.cli;

import io.kiln.BackendException;
import io.kiln.ErrorLines;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code kiln} command line. */
@Command(
    name = "kiln",
    mixinStandardHelpOptions = true,
    versionProvider = KilnCli.Version.class,
    description = "Kiln: build, run and benchmark ONNX models on ONNX Runtime and TensorRT.",
    subcommands = {
      InspectCommand.class,
      BuildCommand.class,
      RunCommand.class,
      EmbedCommand.class,
      BatchCommand.class,
      BenchCommand.class,
      GenerateCommand.class,
      BenchLlmCommand.class,
      ServeCommand.class,
      BenchServeCommand.class,
      MakeRandomModelCommand.class,
      ExportLlmCommand.class,
      QuantizeCommand.class,
      QuantizeLlmCommand.class,
      CommandLine.HelpCommand.class
    })
public final class KilnCli implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(execute(args));
  }

  /** Runs the command line and returns its exit code, without exiting the JVM. */
  public static int execute(String... args) {
    configureNativeLimits();
    return newCommandLine().execute(args);
  }

  public static CommandLine newCommandLine() {
    CommandLine cli = new CommandLine(new KilnCli());
    cli.setCaseInsensitiveEnumValuesAllowed(true);
    // Every subcommand answers --help and --version, before its required options are checked.
    for (CommandLine sub : cli.getSubcommands().values()) {
      sub.getCommandSpec().mixinStandardHelpOptions(true);
      sub.getCommandSpec().versionProvider(new Version());
      for (CommandLine nested : sub.getSubcommands().values()) {
        nested.getCommandSpec().versionProvider(new Version());
      }
    }
    cli.setParameterExceptionHandler(KilnCli::usageError);
    cli.setExecutionExceptionHandler(
        (ex, commandLine, parseResult) -> {
          commandLine.getErr().println("kiln: " + ErrorLines.describe(ex));
          commandLine.getErr().flush();
          return exitCode(ex);
        });
    return cli;
  }

  /**
   * The CUDA context and large models inflate the process beyond JavaCPP's default memory checks,
   * which would then refuse allocations; Kiln frees native memory explicitly instead.
   */
  static void configureNativeLimits() {
    System.setProperty(
        "org.bytedeco.javacpp.maxPhysicalBytes",
        System.getProperty("org.bytedeco.javacpp.maxPhysicalBytes", "0"));
    System.setProperty(
        "org.bytedeco.javacpp.maxBytes", System.getProperty("org.bytedeco.javacpp.maxBytes", "0"));
    System.setProperty("java.awt.headless", "true");
  }

  /** A command-line mistake: one line and where to look, not the whole usage text. */
  private static int usageError(CommandLine.ParameterException ex, String[] args) {
    CommandLine command = ex.getCommandLine();
    String first = String.valueOf(ex.getMessage()).lines().findFirst().orElse("bad command line");
    command.getErr().println("kiln: " + first);
    command
        .getErr()
        .println("try '" + command.getCommandSpec().qualifiedName() + " --help' for the options");
    command.getErr().flush();
    return ExitCodes.USAGE;
  }

  static int exitCode(Throwable ex) {
    if (ex instanceof ModelException) {
      return ExitCodes.MODEL;
    }
    if (ex instanceof InvalidInputException) {
      return ExitCodes.INPUT;
    }
    if (ex instanceof BackendException) {
      return ExitCodes.BACKEND;
    }
    return ExitCodes.FAILURE;
  }

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  /** Prints the version of Kiln and of the runtimes it carries. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {
        "kiln " + io.kiln.KilnVersion.get(), "onnxruntime " + io.kiln.engine.ort.OrtEngine.version()
      };
    }
  }
}
