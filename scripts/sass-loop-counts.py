#!/usr/bin/env python3
"""Static SASS instruction counts of each kernel and each of its loops, from `nvdisasm -c` output.

A loop is the span from a label to the last backward branch to it; its count is the instructions
one iteration issues at most (both sides of a branch inside it are counted). For kernels bound by
instruction issue (bench/NOTES.md, session 20), the loop's count per element is what a change
must lower.

usage: sass-loop-counts.py FILE.sass [NAME-SUBSTRING]
"""
import collections
import re
import subprocess
import sys


def main():
    text = open(sys.argv[1]).read()
    want = sys.argv[2] if len(sys.argv) > 2 else ''
    pieces = re.split(r'\n\s*//-+ \.text\.(\S+) -+\n', text)
    for i in range(1, len(pieces), 2):
        name = subprocess.run(['c++filt'], input=pieces[i], capture_output=True,
                              text=True).stdout.strip()
        if want not in name:
            continue
        instructions, labels = [], {}
        for line in pieces[i + 1].splitlines():
            label = re.match(r'\s*(\.L_x_\d+):', line)
            if label:
                labels[label.group(1)] = len(instructions)
                continue
            op = re.match(r'\s*/\*([0-9a-f]{4,})\*/\s+(.*?);', line)
            if op:
                instructions.append(op.group(2))
        print(f'{name}: {len(instructions)} instructions')
        loops = {}
        for j, instruction in enumerate(instructions):
            branch = re.search(r'BRA\s.*?(\.L_x_\d+)', instruction)
            if branch and branch.group(1) in labels and labels[branch.group(1)] <= j:
                loops[branch.group(1)] = (labels[branch.group(1)], j)
        for label, (start, stop) in sorted(loops.items(), key=lambda item: item[1]):
            if stop == start:
                continue  # the trailing self-branch after EXIT
            opcodes = collections.Counter(
                re.sub(r'^@!?U?P\w+\s+', '', op).split()[0].split('.')[0]
                for op in instructions[start:stop + 1])
            top = ', '.join(f'{k} {v}' for k, v in opcodes.most_common(12))
            print(f'  loop at {label}: {stop - start + 1} instructions an iteration ({top})')


if __name__ == '__main__':
    main()
