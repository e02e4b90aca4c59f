"""Reports: matplotlib figures (`plots`) and the self-contained HTML report (`html`)."""
