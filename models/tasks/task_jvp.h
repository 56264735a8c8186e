// Directional derivatives of a task's loss in forward mode: the JVP
// counterpart of task_gradient, over the same sequences and the same loss
// (models/tasks/task_gradient.h), so that for a direction z of the trainable
// parameters dL(θ + εz)/dε at ε = 0 equals ⟨∇L, z⟩ from task_gradient, and is
// the limit of a ZO member's (L(θ+εz) − L(θ−εz)) / 2ε on the same samples.
// One pass carries every direction's tangents (CausalLM::jvp); no activation
// outlives its layer.
#pragma once
#include <cstdint>
#include <vector>

#include "models/tasks/task.h"

namespace zeroth {

struct TaskJvp {
  double loss = 0;                   // L at the adapters' θ
  int64_t tokens = 0;                // rows of the batch (each runs 1 + count times)
  std::vector<double> derivatives;   // dL/dε along each direction (count)
};

// dL/dε along directions 0..count-1 (variants of `directions`, as
// CausalLM::jvp reads them) over `examples` (one batch, adapter variant 0).
TaskJvp task_jvp(const CausalLM& model, const Task& task, const std::vector<const Example*>& examples,
                 const AdapterSet& adapters, const AdapterSet& directions, int count);

}  // namespace zeroth
