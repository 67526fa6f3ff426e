package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.execution.llm.RunnerOptions;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The CUDA launch-path switches (on by default, each negatable) and the runner options. */
class LlmModelOptionsTest {
  @CommandLine.Command(name = "holder")
  static final class Holder {
    @CommandLine.Mixin LlmModelOptions model = new LlmModelOptions();
  }

  private static LlmModelOptions parse(String... args) {
    Holder h = new Holder();
    String[] all = new String[args.length + 2];
    all[0] = "--model";
    all[1] = "unused";
    System.arraycopy(args, 0, all, 2, args.length);
    new CommandLine(h).parseArgs(all);
    return h.model;
  }

  @Test
  void everyLaunchPathSwitchIsOnByDefault() {
    LlmModelOptions o = parse("--device", "cuda");
    assertTrue(o.skinnyGemm);
    assertTrue(o.programmaticLaunch);
    assertTrue(o.fusedNorms);
    assertEquals(
        "cuda (f16 storage, fp32 math, Kiln skinny GEMM up to 8 rows, cuBLAS above + Kiln"
            + " kernels, programmatic launch, norms fused into the products, int8 LM head: draft)",
        o.backend());
  }

  @Test
  void eachSwitchTurnsOff() {
    LlmModelOptions o =
        parse(
            "--device",
            "cuda",
            "--no-skinny-gemm",
            "--no-programmatic-launch",
            "--no-fused-norms",
            "--int8-lm-head",
            "off");
    assertFalse(o.skinnyGemm);
    assertFalse(o.programmaticLaunch);
    assertEquals("cuda (f16 storage, fp32 math, cuBLAS + Kiln kernels)", o.backend());
    assertTrue(parse("--skinny-gemm").skinnyGemm);
    assertFalse(parse("--no-skinny-gemm", "--programmatic-launch").skinnyGemm);
  }

  @Test
  void fusedNormsTurnOffOnTheirOwn() {
    LlmModelOptions o = parse("--device", "cuda", "--no-fused-norms");
    assertFalse(o.fusedNorms);
    assertTrue(o.skinnyGemm);
    assertTrue(o.backend().endsWith("kernels, programmatic launch, int8 LM head: draft)"));
    assertTrue(parse("--no-skinny-gemm", "--fused-norms").fusedNorms);
  }

  @Test
  void flagsBecomeRunnerOptionsWithUsableBlocks() {
    RunnerOptions cpu = parse("--threads", "3", "--block-size", "8").runnerOptions(7, false, 4, 32);
    assertEquals(7, cpu.kvBlocks(), "the CPU pool always holds what the command asked for");
    assertEquals(8, cpu.blockSize());
    assertEquals(3, cpu.threads());
    assertEquals(4, cpu.maxNumSeqs());
    assertEquals(32, cpu.maxBatchedTokens());
    assertEquals(0, parse().runnerOptions(7, false, 4, 32).threads(), "0: every core");

    LlmModelOptions cuda =
        parse(
            "--device",
            "cuda",
            "--dtype",
            "f32",
            "--kv-utilization",
            "0.5",
            "--max-model-len",
            "256",
            "--no-cuda-graphs",
            "--no-fused-norms");
    RunnerOptions sized = cuda.runnerOptions(7, false, 4, 32);
    assertEquals(0, sized.kvBlocks(), "cuda sizes its pool from free memory unless fixed");
    assertEquals(RunnerOptions.Storage.F32, sized.storage());
    assertEquals(0.5, sized.kvUtilization());
    assertEquals(256, sized.maxModelLen());
    assertFalse(sized.cudaGraphs());
    assertFalse(sized.fusedNorms());
    assertTrue(sized.skinnyGemm());
    assertEquals(7, cuda.runnerOptions(7, true, 4, 32).kvBlocks());
  }

  @Test
  void badDtypeOnCudaIsNamedAsTheFlag() {
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () -> parse("--device", "cuda", "--dtype", "bf16").runnerOptions(1, false, 1, 1));
    assertEquals("--dtype must be f16 or f32, got 'bf16'", e.getMessage());
  }

  @Test
  void theInt8LmHeadGoesToDraftsByDefaultAndToNothingWhenOff() {
    LlmModelOptions drafts = parse("--device", "cuda");
    RunnerOptions options = drafts.runnerOptions(7, false, 1, 8);
    assertEquals(RunnerOptions.Int8LmHead.DRAFT, options.int8LmHead());
    assertEquals(RunnerOptions.Int8LmHead.ON, options.forDraft().int8LmHead());
    assertTrue(drafts.backend().endsWith(", int8 LM head: draft)"), drafts.backend());
    RunnerOptions off =
        parse("--device", "cuda", "--int8-lm-head", "off").runnerOptions(7, false, 1, 8);
    assertEquals(RunnerOptions.Int8LmHead.OFF, off.int8LmHead());
    assertEquals(RunnerOptions.Int8LmHead.OFF, off.forDraft().int8LmHead());
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () -> parse("--int8-lm-head", "fp4").runnerOptions(1, false, 1, 1));
    assertEquals("--int8-lm-head must be off, draft or on, got 'fp4'", e.getMessage());
  }
}
