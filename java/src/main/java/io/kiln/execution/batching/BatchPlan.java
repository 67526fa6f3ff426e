package io.kiln.execution.batching;

import java.util.List;

/**
 * One engine run formed from several requests: their indices in the caller's list, and the sequence
 * length they are padded to ({@code -1} when no padding is needed).
 */
public record BatchPlan(List<Integer> requests, long paddedLength) {}
