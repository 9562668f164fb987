    // (tree_sum.wgsl: each lane stores its value, then a halving tree over the {{lanes}} lanes
    // leaves their sum in the first lane's slot.)
    {{red}}[{{at}}] = {{value}};
    workgroupBarrier();
    for (var w = {{lanes}} / 2u; w > 0u; w = w / 2u) {
        if ({{lane}} < w) {
            {{red}}[{{at}}] = {{red}}[{{at}}] + {{red}}[{{at}} + w];
        }
        workgroupBarrier();
    }
